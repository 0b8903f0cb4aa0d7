//! The native equivalent of the `hello` guest: prints its arguments, its
//! pid and its parent's pid. The start-up scenario times a run of it.

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    println!("{}", args.join(" "));
    println!("pid {}", std::process::id());
    println!("ppid {}", std::os::unix::process::parent_id());
}
