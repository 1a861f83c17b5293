"""Policy-side recipes: the one generation path, SFT, rejection sampling, DPO/IPO, MDLOO, pure losses."""
