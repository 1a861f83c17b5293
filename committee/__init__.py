"""iTeC committee rounds: round runner, evaluation, Bradley-Terry/Elo leaderboard, promotion, reports."""
