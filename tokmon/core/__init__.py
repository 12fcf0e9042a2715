"""tokmon's core: typed domain objects and the live loop shared by every surface.

Nothing in here imports a surface (cli, server, watch, statusline, web, export).
"""
