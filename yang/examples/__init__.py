"""Valid and invalid instance documents for the modules in `qstrata.yang` (package data)."""
