"""Recordings after the fact: loaders (a neurorig recording folder, a Spike
Recorder WAV), the offline pipeline over them, and the HTML report."""
