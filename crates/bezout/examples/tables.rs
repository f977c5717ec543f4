//! Print the counting table of the paper's CIFAR network and the numeric-check
//! table of a small case (what `landscape bezout` and `landscape bezout check`
//! print, without building the CLI): `cargo run -p landscape-bezout --example tables`.
#![allow(clippy::print_stdout)]

use landscape_bezout::table::{check_table, square_table, CountTable};
use landscape_bezout::{
    Activation, Architecture, NumericCheckParams, PolyNet, SquareCountParams, PAPER_CIFAR_WIDTHS,
};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let arch = Architecture::paper_cifar(PAPER_CIFAR_WIDTHS)?;
    print!(
        "{}",
        CountTable::new(arch, 50_000).batch_norm(true).render()?
    );
    println!();
    print!(
        "{}",
        CountTable::new(Architecture::appendix_a(1)?, 8).render()?
    );
    println!();
    let net = PolyNet::new(3, &[4], Activation::cubic(), true)?;
    let report = NumericCheckParams::new(net, 12).starts(5).run()?;
    print!(
        "{}",
        check_table(&[("d=3 h=[4] cubic".to_string(), report)])
    );
    let square = SquareCountParams::tiny()?.starts(100).run()?;
    print!("{}", square_table("d=2 h=[2] cubic", &square));
    Ok(())
}
