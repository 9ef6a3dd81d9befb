def pytest_configure(config):
    config.addinivalue_line("markers", "e2e: end-to-end test in a real browser (needs /usr/bin/chromium + playwright)")
