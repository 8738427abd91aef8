"""Replication audit: do samples copy training images?"""
