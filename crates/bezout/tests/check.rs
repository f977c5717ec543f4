//! The numeric check of Proposition 1 on small cases.

use landscape_bezout::{Activation, BezoutError, NumericCheckParams, PolyNet, SquareCountParams};

fn assert_degenerate(report: &landscape_bezout::CheckReport, min_solutions: usize) {
    assert!(
        report.solutions().len() >= min_solutions,
        "{} solutions found",
        report.solutions().len()
    );
    for s in report.solutions() {
        assert!(s.residual() < 1e-10, "residual {}", s.residual());
        assert_eq!(s.jacobian_rank(), report.n());
        assert_eq!(
            s.zero_eigenvalues(),
            report.w() - report.n(),
            "zero eigenvalues vs W - N"
        );
        assert_eq!(s.negative_eigenvalues(), 0);
        assert!(
            s.max_zero_eigenvalue() < 1e-12,
            "zero eigenvalues up to {}",
            s.max_zero_eigenvalue()
        );
        assert!(s.gap_decades() > 3.0, "gap {}", s.gap_decades());
    }
    assert!(report.all_degenerate_as_predicted());
}

#[test]
fn one_hidden_layer_cubic() {
    let net = PolyNet::new(3, &[4], Activation::cubic(), true).unwrap();
    assert_eq!(net.n_params(), 21);
    let report = NumericCheckParams::new(net, 12)
        .starts(4)
        .seed(7)
        .run()
        .unwrap();
    assert_eq!((report.w(), report.n()), (21, 12));
    assert_degenerate(&report, 3);
    // Different starts land on different points of the solution set.
    let s = report.solutions();
    let dist = (s[0].weights() - s[1].weights()).mapv(f64::abs).sum();
    assert!(dist > 1e-3);
}

#[test]
fn two_hidden_layers_quadratic() {
    let net = PolyNet::new(3, &[4, 4], Activation::quadratic(), true).unwrap();
    let w = net.n_params();
    assert_eq!(w, 41);
    let report = NumericCheckParams::new(net, 20)
        .starts(3)
        .seed(3)
        .run()
        .unwrap();
    assert_degenerate(&report, 2);
}

#[test]
fn too_many_points_for_the_network_is_an_error() {
    // One input and one hidden layer of quadratics: the output is a quadratic in x,
    // so the Jacobian has rank at most 3 whatever W is.
    let net = PolyNet::new(1, &[5], Activation::quadratic(), true).unwrap();
    let err = NumericCheckParams::new(net, 6).run().unwrap_err();
    assert!(
        matches!(err, BezoutError::RankDeficientNetwork { n: 6, rank: 3, .. }),
        "{err}"
    );
}

#[test]
fn runs_are_deterministic() {
    let net = PolyNet::new(2, &[3], Activation::cubic(), true).unwrap();
    let a = NumericCheckParams::new(net.clone(), 6)
        .starts(2)
        .seed(11)
        .run()
        .unwrap();
    let b = NumericCheckParams::new(net, 6)
        .starts(2)
        .seed(11)
        .run()
        .unwrap();
    assert_eq!(a.solutions().len(), b.solutions().len());
    for (x, y) in a.solutions().iter().zip(b.solutions()) {
        assert_eq!(x.weights(), y.weights());
    }
}

#[test]
fn square_case_counts_distinct_solutions_below_bezout() {
    let report = SquareCountParams::tiny()
        .unwrap()
        .starts(40)
        .seed(1)
        .run()
        .unwrap();
    assert_eq!(report.w(), 8);
    // a sigma(v . x + b) with a cubic sigma: degree 4 in the weights, 4^8 = 65536.
    assert_eq!(report.degree().to_string(), "4");
    assert_eq!(
        report.bezout().exact().map(ToString::to_string),
        Some("65536".to_string())
    );
    assert_eq!(
        report.real_estimate().exact().map(ToString::to_string),
        Some("256".to_string())
    );
    assert_eq!(
        report.paper_bezout().exact().map(ToString::to_string),
        Some("43046721".to_string())
    ); // 3^(2*8)
    assert!(report.converged() >= 2, "converged {}", report.converged());
    assert!(report.distinct() >= 2);
    assert!(report.orbits() <= report.distinct() && report.orbits() >= 1);
    // Only permutations of the two hidden units: each orbit has at most 2 points.
    assert_eq!(report.symmetry_order(), 2.0);
    assert!(report.distinct() <= 2 * report.orbits());
    assert!((report.distinct() as f64) <= report.bezout().to_f64().unwrap());
}

#[test]
fn square_case_needs_a_full_rank_network() {
    // Cubics in 2 variables span 10 dimensions: 12 weights cannot all be independent.
    let net = PolyNet::new(2, &[3], Activation::cubic(), false).unwrap();
    let err = SquareCountParams::new(net).starts(1).run().unwrap_err();
    assert!(
        matches!(err, BezoutError::RankDeficientNetwork { n: 12, .. }),
        "{err}"
    );
}

#[test]
fn odd_activation_orbits_collapse_sign_flips() {
    let net = PolyNet::new(2, &[2], Activation::odd_cubic(), false).unwrap();
    let report = SquareCountParams::new(net)
        .starts(60)
        .seed(1)
        .run()
        .unwrap();
    assert_eq!(report.symmetry_order(), 8.0);
    assert!(
        report.distinct() > report.orbits(),
        "{} points, {} orbits",
        report.distinct(),
        report.orbits()
    );
    assert!(report.distinct() <= 8 * report.orbits());
}
