//! Degree and bound formulas against hand calculations and exact big integers.

use landscape_bezout::magnitude::log10_biguint;
use landscape_bezout::{
    Architecture, BezoutError, CountParams, Determinacy, EquationsPerPoint, Magnitude,
    PAPER_CIFAR_WIDTHS,
};
use num_bigint::BigUint;
use proptest::prelude::*;

fn big(v: u64) -> BigUint {
    BigUint::from(v)
}

#[test]
fn one_hidden_layer_by_hand() {
    // f = sum_j a_j sigma(<v_j, x> + b_j) + c with sigma of degree 2: a_j * (v x)^2 has degree 3.
    let arch = Architecture::mlp(&[4, 3, 1]).unwrap();
    assert_eq!(arch.weights(), 4 * 3 + 3 + 3 + 1);
    let r = CountParams::new(arch, 5).degree(2).fit().unwrap();
    assert_eq!(r.degrees().per_layer_in_weights(), &[big(2), big(3)]);
    assert_eq!(r.degrees().in_input(), &big(2));
    assert_eq!(r.degrees().paper_estimate(), Some(&big(4)));
    assert_eq!(r.bezout().exact(), Some(&big(243)));
    assert_eq!(r.paper_bezout().unwrap().exact(), Some(&big(2u64.pow(10))));
    assert_eq!(r.paper_real().unwrap().exact(), Some(&big(32)));
    assert!((r.real_estimate().log10() - 2.5 * 3f64.log10()).abs() < 1e-12);
    assert_eq!(r.dimension(), 14);
    assert_eq!(r.determinacy(), Determinacy::Under);
}

#[test]
fn two_hidden_layers_and_mixed_degrees_by_hand() {
    let arch = Architecture::mlp(&[3, 4, 4, 1]).unwrap();
    // k = 3: d1 = 3, d2 = 3 * (1 + 3) = 12, out = 13 = (3^3 - 1) / 2; input degree 9.
    let d = arch.degrees_uniform(3).unwrap();
    assert_eq!(d.per_layer_in_weights(), &[big(3), big(12), big(13)]);
    assert_eq!(d.in_input(), &big(9));
    assert_eq!(d.paper_estimate(), Some(&big(27)));
    // Mixed (2, 3): d1 = 2, d2 = 3 * 3 = 9, out = 10; input degree 6; no paper estimate.
    let m = arch.degrees(&[2, 3]).unwrap();
    assert_eq!(m.in_weights(), &big(10));
    assert_eq!(m.in_input(), &big(6));
    assert_eq!(m.paper_estimate(), None);
    let r = CountParams::new(arch.clone(), 2)
        .mixed_degrees(vec![2, 3])
        .fit()
        .unwrap();
    assert_eq!(r.bezout().exact(), Some(&big(100)));
    assert_eq!(r.real_estimate().exact(), Some(&big(10)));
    assert!(r.paper_bezout().is_none());
    assert!(matches!(
        arch.degrees(&[2]),
        Err(BezoutError::InvalidParam { field: "ks", .. })
    ));
}

#[test]
fn appendix_a_tree_has_degree_k_plus_one_squared() {
    for units in 1..4 {
        let arch = Architecture::appendix_a(units).unwrap();
        assert_eq!(arch.weights(), 12 * units);
        for k in 1..6u64 {
            let d = arch.degrees_uniform(k as u32).unwrap();
            // a * sigma(w . (a' sigma(v . x + t), ...) + s): k (k + 2) + 1.
            assert_eq!(d.in_weights(), &big((k + 1) * (k + 1)));
            assert_eq!(d.in_input(), &big(k * k));
        }
    }
}

#[test]
fn paper_cifar_preset() {
    let arch = Architecture::paper_cifar(PAPER_CIFAR_WIDTHS).unwrap();
    assert_eq!(arch.weights(), 188_810);
    assert_eq!(arch.depth(), 5);
    assert_eq!(arch.activated_layers(), 4);
    assert_eq!(arch.outputs(), 10);
    let r = CountParams::new(arch.clone(), 50_000)
        .degree(2)
        .fit()
        .unwrap();
    assert_eq!(r.degrees().in_weights(), &big(31));
    assert_eq!(r.degrees().paper_estimate(), Some(&big(32)));
    assert_eq!(r.dimension(), 188_810 - 50_000);
    // 31^50000 has 74,569 digits: only the logarithm is kept.
    assert!(r.bezout().exact().is_none());
    assert!((r.bezout().log10() - 50_000.0 * 31f64.log10()).abs() < 1e-6);
    assert!((r.paper_real().unwrap().log10() - 125_000.0 * 2f64.log10()).abs() < 1e-6);
    // One equation per logit: 500,000 equations for 188,810 weights.
    let all = CountParams::new(arch.clone(), 50_000)
        .equations_per_point(EquationsPerPoint::AllOutputs)
        .fit()
        .unwrap();
    assert_eq!(all.equations(), 500_000);
    assert_eq!(all.determinacy(), Determinacy::Over);
    // The paper's "of the order of 10^(10^5)" needs k >= 7 with its k^(LN/2), L = 5 ...
    let k6 = CountParams::new(arch.clone(), 50_000)
        .degree(6)
        .fit()
        .unwrap();
    assert!(k6.paper_real().unwrap().log10() < 1e5);
    let k7 = CountParams::new(arch.clone(), 50_000)
        .degree(7)
        .fit()
        .unwrap();
    assert!(k7.paper_real().unwrap().log10() > 1e5);
    // ... but k >= 10 with the exact degree (the logit layer is linear): sqrt(2801^50000) = 10^86180.
    assert!((k7.real_estimate().log10() - 25_000.0 * 2801f64.log10()).abs() < 1e-6);
    assert!(k7.real_estimate().log10() < 1e5);
    let k10 = CountParams::new(arch, 50_000).degree(10).fit().unwrap();
    assert_eq!(k10.degrees().in_weights(), &big(11_111));
    assert!(k10.real_estimate().log10() > 1e5);
}

#[test]
fn invalid_inputs_are_named() {
    assert!(matches!(
        Architecture::mlp(&[3]),
        Err(BezoutError::InvalidParam { field: "sizes", .. })
    ));
    assert!(matches!(
        Architecture::appendix_a(0),
        Err(BezoutError::InvalidParam { field: "units", .. })
    ));
    assert!(matches!(
        Architecture::paper_cifar([1, 0, 2, 3]),
        Err(BezoutError::InvalidParam {
            field: "widths",
            ..
        })
    ));
    let arch = Architecture::mlp(&[2, 2, 1]).unwrap();
    assert!(matches!(
        CountParams::new(arch.clone(), 0).fit(),
        Err(BezoutError::InvalidParam { field: "n", .. })
    ));
    assert!(matches!(
        CountParams::new(arch, 3).degree(0).fit(),
        Err(BezoutError::InvalidParam { field: "ks", .. })
    ));
}

#[test]
fn square_and_over_determined() {
    let arch = Architecture::mlp(&[1, 2, 1]).unwrap(); // W = 7
    assert_eq!(
        CountParams::new(arch.clone(), 7)
            .fit()
            .unwrap()
            .determinacy(),
        Determinacy::Well
    );
    let over = CountParams::new(arch, 9).fit().unwrap();
    assert_eq!(over.determinacy(), Determinacy::Over);
    assert_eq!(over.dimension(), -2);
}

proptest! {
    #[test]
    fn uniform_degree_is_geometric_sum(k in 1u32..12, hidden in 1usize..8) {
        let mut sizes = vec![3u64; hidden + 1];
        sizes.push(1);
        let arch = Architecture::mlp(&sizes).unwrap();
        let l = (hidden + 1) as u32;
        let d = arch.degrees_uniform(k).unwrap();
        let expected: BigUint = (0..l).map(|j| BigUint::from(k).pow(j)).sum();
        prop_assert_eq!(d.in_weights(), &expected);
        prop_assert_eq!(d.in_input(), &BigUint::from(k).pow(l - 1));
        // Never above the paper's k^L (k >= 2), and never below k^(L-1).
        if k >= 2 {
            prop_assert!(d.in_weights() < &BigUint::from(k).pow(l));
        }
        prop_assert!(d.in_weights() >= &BigUint::from(k).pow(l - 1));
    }

    #[test]
    fn log10_matches_exact_values(k in 1u32..40, hidden in 1usize..4, n in 1u64..60) {
        let mut sizes = vec![2u64; hidden + 1];
        sizes.push(1);
        let arch = Architecture::mlp(&sizes).unwrap();
        let r = CountParams::new(arch, n).degree(k).fit().unwrap();
        let d = r.degrees().in_weights().clone();
        let exact = d.pow(n as u32);
        prop_assert_eq!(r.bezout().exact(), Some(&exact));
        let tol = 1e-12 * r.bezout().log10().abs().max(1.0);
        prop_assert!((r.bezout().log10() - log10_biguint(&exact)).abs() <= tol);
        // Via decimal digits too: floor(log10) + 1 is the digit count.
        prop_assert_eq!((r.bezout().log10() + 1e-9).floor() as usize + 1, exact.to_string().len());
        prop_assert!((2.0 * r.real_estimate().log10() - r.bezout().log10()).abs() <= tol);
        if n % 2 == 0 {
            prop_assert_eq!(r.real_estimate().exact(), Some(&d.pow((n / 2) as u32)));
        }
    }

    #[test]
    fn bounds_grow_with_k_l_and_n(k in 2u32..20, hidden in 1usize..6, n in 1u64..100_000) {
        let mk = |h: usize| {
            let mut sizes = vec![4u64; h + 1];
            sizes.push(1);
            Architecture::mlp(&sizes).unwrap()
        };
        let base = CountParams::new(mk(hidden), n).degree(k).fit().unwrap();
        let more_k = CountParams::new(mk(hidden), n).degree(k + 1).fit().unwrap();
        let more_l = CountParams::new(mk(hidden + 1), n).degree(k).fit().unwrap();
        let more_n = CountParams::new(mk(hidden), n + 1).degree(k).fit().unwrap();
        for other in [&more_k, &more_l, &more_n] {
            prop_assert!(other.bezout().log10() > base.bezout().log10());
            prop_assert!(other.real_estimate().log10() > base.real_estimate().log10());
            prop_assert!(other.paper_bezout().unwrap().log10() > base.paper_bezout().unwrap().log10());
            prop_assert!(other.bezout().log10().is_finite());
        }
        prop_assert!(more_k.degrees().in_weights() > base.degrees().in_weights());
        prop_assert!(more_l.degrees().in_weights() > base.degrees().in_weights());
    }

    #[test]
    fn magnitude_pow_never_overflows(base in 2u64..1_000_000, exp in 0u64..u64::MAX / 64) {
        let m = Magnitude::pow(&BigUint::from(base), exp);
        prop_assert!(m.log10().is_finite());
        prop_assert!((m.log10() - exp as f64 * (base as f64).log10()).abs() <= 1e-9 * m.log10().max(1.0));
    }
}
