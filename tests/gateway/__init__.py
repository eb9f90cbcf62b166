"""Tests of the live path (gateway) against ibsim and in isolation."""
