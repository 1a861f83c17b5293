"""The one exception type for user mistakes, so the CLI can tell them from bugs.

`UserError` marks a mistake in what the user gave: a path that does not exist, an unknown or renamed
config key, a value out of range, a malformed dataset row, a corrupt file in their folder. The CLI prints
it as one line on stderr and exits with 2. Any other exception is a bug (ours or a library's) and keeps
its traceback (exit 1), so a `JSONDecodeError` or a TRL error is never dressed up as a user mistake.

It subclasses `ValueError` so code that catches bad values (config coercion, a round's DPO candidate
sitting out a round with no pairs) keeps working.

Run: `python -c "from afm_align.errors import UserError; raise UserError('k must be at least 1')"`.
"""


class UserError(ValueError):
    """A user mistake: one clear sentence, printed without a traceback (exit code 2)."""


class NothingToTrain(UserError):
    """The data holds nothing this recipe can train on (e.g. no pair at its `min_level`).

    Alone it is a user mistake like any other; in an iTeC round it means the candidate sits the round out,
    and the runner records the sentence as the reason.
    """
