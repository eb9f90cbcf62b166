"""Tests of the IB Gateway stand-in, driven through the real ib_async client."""
