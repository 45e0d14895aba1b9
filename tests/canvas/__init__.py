"""Tests of the Canvas client (linking/canvas) against the simulator over loopback HTTP."""
