"""ibsim."""
