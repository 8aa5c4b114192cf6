"""Helpers shared by test modules of several layers (no tests here): import them from ``tests.support``,
never from another test module."""
