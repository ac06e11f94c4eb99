//! The `hoop` command line.

fn main() {
    eprintln!("hoop: not built yet; see the open issues");
    std::process::exit(2);
}
