//! The one place this crate calls LAPACK directly: `dsyevd`, the divide and
//! conquer symmetric eigensolver. `ndarray-linalg` 0.18 wraps only `dsyev`
//! (QR iteration), and its `eigvalsh` computes the eigenvectors anyway; on
//! this project's machine that was 10-25x slower than `dsyevd` (n = 2,000:
//! 8 s against 0.3 s for the eigenvalues alone). The backend is the one the
//! final binary links, as for every other LAPACK call.
#![allow(unsafe_code)]

use std::os::raw::{c_char, c_int};

use ndarray::{Array1, Array2};

use crate::error::{MdsError, Result};

const ROUTINE: &str = "dsyevd";

/// Eigenvalues (ascending) of the symmetric `a` and its orthonormal
/// eigenvectors (column j for eigenvalue j), by LAPACK `dsyevd`; `a`'s memory
/// becomes the eigenvector matrix.
pub(crate) fn eigh(a: Array2<f64>, step: &'static str) -> Result<(Array1<f64>, Array2<f64>)> {
    syevd(a, true, step)
}

/// Eigenvalues (ascending) of the symmetric `a`, without eigenvectors.
pub(crate) fn eigvalsh(a: Array2<f64>, step: &'static str) -> Result<Array1<f64>> {
    Ok(syevd(a, false, step)?.0)
}

/// `dsyevd` with `jobz = V` or `N`; the returned matrix is meaningful only
/// with `vectors`.
fn syevd(a: Array2<f64>, vectors: bool, step: &'static str) -> Result<(Array1<f64>, Array2<f64>)> {
    let n = a.nrows();
    let fail = |info: i64, reason: String| MdsError::Lapack {
        step,
        routine: ROUTINE,
        info,
        reason,
    };
    if a.ncols() != n {
        return Err(MdsError::NotSquare {
            rows: n,
            cols: a.ncols(),
        });
    }
    if n == 0 {
        return Ok((Array1::zeros(0), Array2::zeros((0, 0))));
    }
    let n_c = c_int::try_from(n)
        .map_err(|_| fail(-3, format!("n = {n} does not fit LAPACK's 32-bit integers")))?;
    // Row-major storage of a symmetric matrix is its column-major storage.
    let mut a = a.as_standard_layout().into_owned();
    let Some(data) = a.as_slice_mut() else {
        return Err(fail(-4, "the matrix is not contiguous".into()));
    };
    let jobz: c_char = if vectors { b'V' } else { b'N' } as c_char;
    let uplo: c_char = b'L' as c_char;
    let mut w = vec![0.0_f64; n];
    let mut info: c_int = 0;

    // Workspace query.
    let mut work_size = [0.0_f64];
    let mut iwork_size: [c_int; 1] = [0];
    let query: c_int = -1;
    // SAFETY: every pointer is valid for the sizes LAPACK reads or writes in
    // a workspace query (lwork = liwork = -1: only work[0], iwork[0] and
    // info are written); `data` holds n * n values with lda = n.
    unsafe {
        lapack_sys::dsyevd_(
            &jobz,
            &uplo,
            &n_c,
            data.as_mut_ptr(),
            &n_c,
            w.as_mut_ptr(),
            work_size.as_mut_ptr(),
            &query,
            iwork_size.as_mut_ptr(),
            &query,
            &mut info,
        );
    }
    if info != 0 {
        return Err(fail(i64::from(info), "workspace query failed".into()));
    }
    // LAPACK reports lwork as a float: round up, and refuse what 32 bits cannot hold.
    let lwork = work_size[0].ceil().max(1.0);
    if lwork > f64::from(c_int::MAX) {
        return Err(fail(
            -8,
            format!("n = {n} needs {lwork} workspace values, more than LAPACK's 32-bit integers can count: use the partial solver"),
        ));
    }
    let lwork_c = lwork as c_int;
    let liwork_c = iwork_size[0].max(1);
    let mut work = vec![0.0_f64; lwork_c.unsigned_abs() as usize];
    let mut iwork: Vec<c_int> = vec![0; liwork_c.unsigned_abs() as usize];
    // SAFETY: `data` holds n * n values (lda = n), `w` n values, `work` and
    // `iwork` exactly the lengths passed as lwork and liwork, which are at
    // least what the workspace query asked for.
    unsafe {
        lapack_sys::dsyevd_(
            &jobz,
            &uplo,
            &n_c,
            data.as_mut_ptr(),
            &n_c,
            w.as_mut_ptr(),
            work.as_mut_ptr(),
            &lwork_c,
            iwork.as_mut_ptr(),
            &liwork_c,
            &mut info,
        );
    }
    if info < 0 {
        return Err(fail(
            i64::from(info),
            format!("argument {} was invalid", -info),
        ));
    }
    if info > 0 {
        return Err(fail(
            i64::from(info),
            "the divide and conquer algorithm failed to converge".into(),
        ));
    }
    // Column-major eigenvectors read as row-major are the transpose.
    Ok((Array1::from(w), a.reversed_axes()))
}
