"""Synthetic task families, their verifiers and reward functions, the code sandbox, and dataset builders."""
