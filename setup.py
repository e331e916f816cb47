"""glide_jax: GLIDE and PITI pixel-space diffusion in JAX/Flax."""
from setuptools import find_packages, setup

# Versions that install together on Python 3.11 (checked on a clean machine).
INSTALL_REQUIRES = [
    "jax==0.10.2",
    "jaxlib==0.10.2",
    "flax==0.12.8",
    "optax==0.2.8",
    "orbax-checkpoint==0.12.8",
    "ml-collections==1.1.0",
    "absl-py==2.5.1",
    "clu==0.0.12",
    "tensorflow-cpu==2.21.0",
    "tensorboard==2.21.0",
    "tensorflow-datasets==4.9.10",
    "grain==0.2.18",
    "array-record==0.8.6",
    "transformers==5.23.0",
    "tokenizers==0.23.3",
    "safetensors==0.8.0",
    "numpy>=2.0,<3",
    "scipy>=1.13",
    "pillow>=10",
    # PITI's degradation chain (cv2.resize interpolations, JPEG) is defined by OpenCV.
    "opencv-python-headless==5.0.0.93",
    "tqdm>=4.66",
]

EXTRAS = {
    # Only for reading/writing PyTorch .pt files; safetensors work without it.
    "torch": ["torch==2.13.0"],
    "test": [
        "pytest==9.0.3",
        "pytest-xdist==3.8.0",
        "pytest-timeout==2.4.0",
        "nbclient==0.11.0",
        "nbformat==5.11.1",
        "ipykernel==7.4.0",
    ],
}

setup(
    name="glide_jax",
    version="0.1.0",
    description="GLIDE and PITI pixel-space diffusion (image-to-image translation) in JAX/Flax",
    packages=find_packages(include=["glide_jax", "glide_jax.*"]),
    package_data={"glide_jax": ["py.typed", "assets/demo_prior/*"]},
    python_requires=">=3.11",  # jax 0.10.2 needs Python 3.11+
    install_requires=INSTALL_REQUIRES,
    extras_require=EXTRAS,
)
