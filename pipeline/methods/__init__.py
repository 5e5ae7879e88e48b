"""One home per method (stage 1 generators and stage 2 methods); the registries are in
registry.py. Each home: generator.py (the registered object, light imports), config
(pydantic), and the heavy modules it imports inside `write`.
"""
