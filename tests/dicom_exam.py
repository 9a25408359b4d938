"""A four-series DICOM MR exam written (pydicom) from a real BraTS case folder, the way a scanner
exports one: a folder per series (SE001..SE004), one MR Image Storage file per slice, the geometry in
ImagePositionPatient / ImageOrientationPatient / PixelSpacing, descriptions as scanners name them.
"""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage, generate_uid

from napari_brainseg.io.brats import find_case_files

# scanner-style series descriptions, deliberately not the BraTS names
DESCRIPTIONS = {"t1": "T1 SE AX", "t1ce": "T1 AX POST GD", "t2": "AX T2 FSE", "flair": "AX T2 FLAIR"}
SERIES_ORDER = ("t1", "t2", "flair", "t1ce")  # SE001 .. SE004
LPS = np.diag([-1.0, -1.0, 1.0])


def write_series(volume_path: Path, folder: Path, description: str, number: int, study: dict) -> Path:
    img = nib.load(str(volume_path))
    data = np.asarray(img.dataobj)
    affine = img.affine
    folder.mkdir(parents=True)
    series_uid = generate_uid()
    row_dir = LPS @ affine[:3, 0]  # along a row: the column index (i) increases
    col_dir = LPS @ affine[:3, 1]
    spacing = np.linalg.norm(affine[:3, :3], axis=0)
    for k in range(data.shape[2]):
        ds = Dataset()
        ds.file_meta = FileMetaDataset()
        ds.file_meta.MediaStorageSOPClassUID = MRImageStorage
        ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.SOPClassUID, ds.SOPInstanceUID = MRImageStorage, ds.file_meta.MediaStorageSOPInstanceUID
        ds.Modality, ds.SeriesDescription, ds.SeriesNumber, ds.InstanceNumber = "MR", description, number, k + 1
        ds.PatientName, ds.PatientID, ds.PatientSex, ds.PatientBirthDate = "Test^Exam", study["patient"], "O", ""
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study["uid"], series_uid
        ds.FrameOfReferenceUID, ds.StudyID, ds.AccessionNumber = study["frame"], "1", ""
        ds.StudyDate = ds.SeriesDate = "20200101"
        ds.StudyTime = ds.SeriesTime = "120000"
        ds.ReferringPhysicianName, ds.Manufacturer = "", "test"
        ds.ImagePositionPatient = [float(v) for v in LPS @ (affine @ [0, 0, k, 1])[:3]]
        ds.ImageOrientationPatient = [float(v) for v in np.concatenate([row_dir / spacing[0], col_dir / spacing[1]])]
        ds.PixelSpacing = [float(spacing[1]), float(spacing[0])]  # between rows, between columns
        ds.SliceThickness = float(spacing[2])
        plane = np.ascontiguousarray(data[:, :, k].T).astype(np.int16)  # (rows = j, columns = i)
        ds.Rows, ds.Columns = plane.shape
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.PixelData = plane.tobytes()
        ds.save_as(folder / f"IM{k + 1:04d}.dcm", enforce_file_format=True)
    return folder


def write_exam(case_folder: Path, exam: Path) -> Path:
    """The case's four modalities as series SE001..SE004 under ``exam``."""
    files = find_case_files(case_folder)
    study = {"uid": generate_uid(), "frame": generate_uid(), "patient": files.case_id[:16]}
    for number, modality in enumerate(SERIES_ORDER, start=1):
        write_series(files.images[modality], exam / f"SE{number:03d}", DESCRIPTIONS[modality], number, study)
    return exam
