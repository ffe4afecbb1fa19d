def pytest_configure(config):
    config.addinivalue_line("markers", "distributed: launches torchrun with two gloo processes")
