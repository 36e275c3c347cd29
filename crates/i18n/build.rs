//! Rebuilds the crate when a catalogue folder is added: the catalogue macro reads `locales/`
//! at compile time but cargo tracks only the files it includes.

fn main() {
    println!("cargo::rerun-if-changed=locales");
}
