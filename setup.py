"""Packaging for idc_sklearn."""

from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent

# Whole-slide images (predict_slide, idc-sklearn slide): OpenSlide from its wheels,
# nothing from the system; tiffslide where OpenSlide cannot serve; shapely merges the
# IDC regions; tifffile writes pyramidal TIFFs and probability maps.
SLIDES = [
    "openslide-python>=1.4",
    "openslide-bin>=4.0",
    "tiffslide>=2.4",
    "tifffile>=2023.7",
    "shapely>=2.0",
]

setup(
    name="idc_sklearn",
    version="0.1.0",
    description=(
        "The MLBN Inception network for invasive ductal carcinoma patches "
        "as a scikit-learn estimator, with data loaders, baselines and metrics."
    ),
    long_description=(HERE / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="MIT",
    python_requires=">=3.10",
    packages=find_packages(exclude=["tests", "tests.*"]),
    # The IDC sample that load_idc_sample reads, with its description, and the
    # pretrained models' weights and cards that load_pretrained reads, and the
    # template of the HTML report.
    package_data={
        "idc_sklearn.datasets": ["data/idc_sample.npz", "data/*.rst"],
        "idc_sklearn": [
            "pretrained_models/*.safetensors",
            "pretrained_models/*.json",
            "templates/*.jinja",
        ],
    },
    install_requires=[
        "torch>=2.2,<3",
        "skorch>=1.0,<2",
        "scikit-learn>=1.7,<2",
        "numpy>=1.26",
        "scipy>=1.11",
        "pandas>=2.1",
        "imbalanced-learn>=0.13",
        "pillow>=10",
        "scikit-image>=0.22",
        "matplotlib>=3.8",
        "tqdm>=4.66",
        "tabulate>=0.9",
        "joblib>=1.3",
        "safetensors>=0.4",
        "jinja2>=3.1",
        # the shipped handcrafted pipelines, read without pickle
        "skops>=0.10",
    ],
    extras_require={
        "dev": [
            "pytest>=8",
            "ruff>=0.6",
            "hypothesis>=6.100",
            "dask[distributed]>=2024.1",
            "accelerate>=0.30",
            # the HTML report checked in a real browser (Debian's chromium) and
            # parsed as HTML5
            "playwright>=1.40",
            "html5lib>=1.1",
            # the docs' figure scraper is tested with the suite
            "sphinx-gallery>=0.16",
            *SLIDES,
        ],
        "slides": SLIDES,
        # predict_slides and idc-sklearn slide --scheduler on a Dask cluster
        "cluster": ["dask[distributed]>=2024.1", *SLIDES],
        "docs": [
            "sphinx>=7",
            "numpydoc>=1.6",
            "sphinx-gallery>=0.16",
            "myst-parser>=2",
            # the API pages import idc_sklearn.accelerated; the gallery's slide
            # example reads a slide
            "accelerate>=0.30",
            *SLIDES,
        ],
    },
    entry_points={"console_scripts": ["idc-sklearn=idc_sklearn.cli:main"]},
    classifiers=[
        "Programming Language :: Python :: 3",
        "Topic :: Scientific/Engineering :: Medical Science Apps.",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ],
)
