"""Read and write volumes lazily (TIFF/BigTIFF, zarr v3, npy), sample metadata, dataset.json.

See ``DESIGN.md`` ("Data conventions"): arrays are (Z, Y, X); bad input raises a ``ValueError``
naming the file and the problem; writers never leave a half-written file that looks complete.
"""

from particleseg.io._slabs import read_box, release_pages, slab_depth
from particleseg.io.dataset import (
    DATASET_JSON,
    SPLITS,
    Dataset,
    SampleEntry,
    load_dataset,
    read_sample,
    validate_dataset,
    write_dataset_json,
)
from particleseg.io.metadata import (
    SampleMetadata,
    read_metadata,
    read_sidecar_spacing,
    sidecar_path,
    write_metadata,
)
from particleseg.io.validation import (
    check_image,
    check_labels,
    check_shapes_match,
    check_volume_shape,
)
from particleseg.io.volumes import (
    DEFAULT_CHUNKS,
    VolumeArray,
    read_volume,
    read_volume_spacing,
    volume_format,
    write_volume,
)

__all__ = [
    "DATASET_JSON",
    "DEFAULT_CHUNKS",
    "SPLITS",
    "Dataset",
    "SampleEntry",
    "SampleMetadata",
    "VolumeArray",
    "check_image",
    "check_labels",
    "check_shapes_match",
    "check_volume_shape",
    "load_dataset",
    "read_metadata",
    "read_sidecar_spacing",
    "read_box",
    "read_sample",
    "read_volume",
    "read_volume_spacing",
    "release_pages",
    "sidecar_path",
    "slab_depth",
    "validate_dataset",
    "volume_format",
    "write_dataset_json",
    "write_metadata",
    "write_volume",
]
