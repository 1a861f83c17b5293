"""Gradio apps: the annotation app (writes the label store) and the researchers' compare tab (reads round files)."""
