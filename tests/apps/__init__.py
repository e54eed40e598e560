"""Small applications the configuration tests run as real subprocesses."""
