"""Plotly figure builders shared by the command line (HTML reports) and the dashboard."""
