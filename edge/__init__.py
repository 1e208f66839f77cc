"""The bin sorter: camera, int8 classifier, keypad gathering, self-updating models."""
