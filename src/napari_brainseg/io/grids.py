"""Series on different grids brought onto one reference grid (by their world coordinates), and an
optional rigid co-registration (SimpleITK) when the series were not acquired in one session.

Resampling uses nibabel's ``resample_from_to`` (scipy underneath): each reference voxel takes the
value at its own world position in the other series, linearly interpolated; positions outside the
other series' field of view get 0 (background). Labels use nearest neighbour.
"""

from __future__ import annotations

import numpy as np

from .nifti import Volume, napari_to_nifti, nifti_to_napari

# affines closer than this (mm, per element) are the same grid: files of one case rounded differently
SAME_GRID_ATOL = 1e-3


def same_grid(a: Volume, b: Volume) -> bool:
    return a.data.shape == b.data.shape and np.allclose(a.affine, b.affine, atol=SAME_GRID_ATOL)


def _image(volume: Volume, data=None):
    import nibabel as nib

    return nib.Nifti1Image(napari_to_nifti(volume.data if data is None else data), volume.affine)


def onto_grid(volume: Volume, reference: Volume, *, labels: bool = False) -> np.ndarray:
    """``volume``'s data resampled onto ``reference``'s grid, napari order, float32 (labels: uint8)."""
    from nibabel.processing import resample_from_to

    data = volume.data.astype(np.uint8 if labels else np.float32, copy=False)
    source = _image(volume, data)
    target = (napari_to_nifti(reference.data).shape, reference.affine)
    out = resample_from_to(source, target, order=0 if labels else 1, mode="constant", cval=0)
    values = nifti_to_napari(np.asarray(out.dataobj).astype(data.dtype, copy=False))
    if labels:
        return values
    # an exact-zero background stays exactly 0 (nearest neighbour), without a trilinear halo
    support = resample_from_to(_image(volume, (data != 0).astype(np.uint8)), target, order=0, mode="constant", cval=0)
    return np.where(nifti_to_napari(np.asarray(support.dataobj)) > 0, values, np.float32(0))


def describe_difference(volume: Volume, reference: Volume, name: str, reference_name: str) -> str:
    spacing = " x ".join(f"{s:g}" for s in volume.spacing)
    ref_spacing = " x ".join(f"{s:g}" for s in reference.spacing)
    return (
        f"{name} ({volume.data.shape}, {spacing} mm) is on another grid than {reference_name} "
        f"({reference.data.shape}, {ref_spacing} mm): resampled onto the {reference_name} grid"
    )


def register_rigid(moving: Volume, fixed: Volume) -> tuple[np.ndarray, dict]:
    """Rigid (6 degrees of freedom) co-registration of ``moving`` onto ``fixed`` with SimpleITK's
    Mattes mutual information (works across MR contrasts); returns the resampled data (napari order,
    float32) and the transform as a dict for the result's metadata.

    Deterministic: a fixed sampling seed and a single thread.
    """
    import SimpleITK as sitk

    fixed_image, moving_image = to_sitk(fixed), to_sitk(moving)
    initial = sitk.CenteredTransformInitializer(
        fixed_image, moving_image, sitk.Euler3DTransform(), sitk.CenteredTransformInitializerFilter.GEOMETRY
    )
    method = sitk.ImageRegistrationMethod()
    method.SetMetricAsMattesMutualInformation(numberOfHistogramBins=32)
    method.SetMetricSamplingStrategy(method.RANDOM)
    method.SetMetricSamplingPercentage(0.05, seed=7)
    method.SetInterpolator(sitk.sitkLinear)
    method.SetOptimizerAsRegularStepGradientDescent(learningRate=1.0, minStep=1e-3, numberOfIterations=100)
    method.SetOptimizerScalesFromPhysicalShift()
    method.SetShrinkFactorsPerLevel([4, 2, 1])
    method.SetSmoothingSigmasPerLevel([2, 1, 0])
    method.SetInitialTransform(initial, inPlace=False)
    method.SetNumberOfThreads(1)
    transform = method.Execute(fixed_image, moving_image)
    moved = sitk.Resample(moving_image, fixed_image, transform, sitk.sitkLinear, 0.0, sitk.sitkFloat32)
    euler = sitk.Euler3DTransform(sitk.CompositeTransform(transform).GetNthTransform(0)) if transform.GetName() == "CompositeTransform" else sitk.Euler3DTransform(transform)
    record = {
        "type": "rigid (Euler3D), LPS world mm, maps the reference's points into the moving series",
        "angles_rad": [float(a) for a in (euler.GetAngleX(), euler.GetAngleY(), euler.GetAngleZ())],
        "translation_mm": [float(t) for t in euler.GetTranslation()],
        "center_mm": [float(c) for c in euler.GetCenter()],
        "metric": float(method.GetMetricValue()),
    }
    return sitk.GetArrayFromImage(moved).astype(np.float32), record


# NIfTI world is RAS, ITK/DICOM world is LPS: the first two axes change sign
_RAS_TO_LPS = np.diag([-1.0, -1.0, 1.0])


def to_sitk(volume: Volume):
    """A napari-order volume with its NIfTI affine -> SimpleITK image (LPS geometry)."""
    import SimpleITK as sitk

    image = sitk.GetImageFromArray(volume.data.astype(np.float32, copy=False))  # (z, y, x) -> x, y, z
    linear = _RAS_TO_LPS @ volume.affine[:3, :3]
    spacing = np.linalg.norm(linear, axis=0)
    image.SetSpacing([float(s) for s in spacing])
    image.SetDirection([float(v) for v in (linear / spacing).ravel()])
    image.SetOrigin([float(v) for v in _RAS_TO_LPS @ volume.affine[:3, 3]])
    return image


def affine_from_sitk(image) -> np.ndarray:
    """SimpleITK (LPS) geometry -> NIfTI (RAS) affine of the i, j, k axes."""
    direction = np.asarray(image.GetDirection(), dtype=float).reshape(3, 3)
    affine = np.eye(4)
    affine[:3, :3] = _RAS_TO_LPS @ direction @ np.diag(image.GetSpacing())
    affine[:3, 3] = _RAS_TO_LPS @ np.asarray(image.GetOrigin(), dtype=float)
    return affine
