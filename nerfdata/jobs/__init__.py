"""Whole user tasks (render, train, ...): wiring, progress, output folders."""
