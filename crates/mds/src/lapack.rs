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
    let fail = |info: i64, reason: String| lapack_error(step, info, reason);
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
    let mut a = crate::into_standard_layout(a);
    let Some(data) = a.as_slice_mut() else {
        return Err(fail(-4, "the matrix is not contiguous".into()));
    };
    let jobz: c_char = if vectors { b'V' } else { b'N' } as c_char;
    let mut w = vec![0.0_f64; n];

    // Workspace query (lwork = liwork = -1).
    let mut work_size = [0.0_f64];
    let mut iwork_size: [c_int; 1] = [0];
    let info = call(
        jobz,
        n_c,
        data,
        &mut w,
        &mut work_size,
        -1,
        &mut iwork_size,
        -1,
    )?;
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
    let info = call(
        jobz, n_c, data, &mut w, &mut work, lwork_c, &mut iwork, liwork_c,
    )?;
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

fn lapack_error(step: &'static str, info: i64, reason: String) -> MdsError {
    MdsError::Lapack {
        step,
        routine: ROUTINE,
        info,
        reason,
    }
}

/// One `dsyevd_` call (lower triangle, lda = n) on buffers whose lengths are
/// checked first; returns LAPACK's `info`. `lwork = liwork = -1` is the
/// workspace query, which writes only `work[0]` and `iwork[0]`.
#[allow(clippy::too_many_arguments)]
fn call(
    jobz: c_char,
    n: c_int,
    a: &mut [f64],
    w: &mut [f64],
    work: &mut [f64],
    lwork: c_int,
    iwork: &mut [c_int],
    liwork: c_int,
) -> Result<c_int> {
    let n_us = n.unsigned_abs() as usize;
    let needed = |len: c_int| {
        if len == -1 {
            1
        } else {
            len.unsigned_abs() as usize
        }
    };
    if n < 0
        || a.len() < n_us * n_us
        || w.len() < n_us
        || work.len() < needed(lwork)
        || iwork.len() < needed(liwork)
    {
        return Err(lapack_error(
            "calling LAPACK",
            -1,
            "a buffer is shorter than its declared size".into(),
        ));
    }
    let uplo: c_char = b'L' as c_char;
    let mut info: c_int = 0;
    // SAFETY: the lengths were checked above against what dsyevd reads and
    // writes: `a` n * n values with lda = n, `w` n values, `work` lwork and
    // `iwork` liwork values (one each for the query); the scalars live on
    // this stack frame for the whole call.
    unsafe {
        lapack_sys::dsyevd_(
            &jobz,
            &uplo,
            &n,
            a.as_mut_ptr(),
            &n,
            w.as_mut_ptr(),
            work.as_mut_ptr(),
            &lwork,
            iwork.as_mut_ptr(),
            &liwork,
            &mut info,
        );
    }
    Ok(info)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use ndarray::array;

    use super::*;

    // Reference (numpy 2.4.6):
    //   np.linalg.eigvalsh(np.array([[2., -1, 0], [-1, 2, -1], [0, -1, 2]]))
    //   -> [2 - sqrt(2), 2, 2 + sqrt(2)]
    #[test]
    fn eigenpairs_of_a_known_matrix() {
        let a = array![[2.0, -1.0, 0.0], [-1.0, 2.0, -1.0], [0.0, -1.0, 2.0]];
        let s2 = 2.0_f64.sqrt();
        let (values, vectors) = eigh(a.clone(), "test").unwrap();
        for (got, want) in values.iter().zip([2.0 - s2, 2.0, 2.0 + s2]) {
            assert!((got - want).abs() < 1e-14, "{got} vs {want}");
        }
        // A v = lambda v, and V is orthonormal.
        for (j, &lambda) in values.iter().enumerate() {
            let v = vectors.column(j);
            let r = a.dot(&v) - &v * lambda;
            assert!(r.dot(&r).sqrt() < 1e-14);
        }
        let gram = vectors.t().dot(&vectors);
        for ((i, j), g) in gram.indexed_iter() {
            assert!((g - f64::from(u8::from(i == j))).abs() < 1e-14);
        }
        let only = eigvalsh(a, "test").unwrap();
        assert!(only.iter().zip(&values).all(|(a, b)| (a - b).abs() < 1e-14));
    }

    #[test]
    fn bad_shapes_and_buffers_are_errors() {
        assert!(matches!(
            eigh(Array2::zeros((2, 3)), "test"),
            Err(MdsError::NotSquare { rows: 2, cols: 3 })
        ));
        let (values, vectors) = eigh(Array2::zeros((0, 0)), "test").unwrap();
        assert_eq!((values.len(), vectors.dim()), (0, (0, 0)));
        // A buffer shorter than declared never reaches LAPACK.
        let mut a = vec![0.0; 3];
        let mut w = vec![0.0; 2];
        let (mut work, mut iwork) = (vec![0.0; 1], vec![0; 1]);
        let jobz = b'N' as c_char;
        assert!(matches!(
            call(jobz, 2, &mut a, &mut w, &mut work, -1, &mut iwork, -1),
            Err(MdsError::Lapack { .. })
        ));
    }
}
