//! Procedural macros of the gort runtime: `go!`, `spawn!`, `select!`, `#[gort::main]` and
//! `#[gort::test]`.
//!
//! The runtime crate `gort` re-exports them; depend on `gort`, not on this crate directly. The
//! generated code names the runtime as `::gort`.
//!
//! Invariant: every macro either expands to code that only calls `gort`'s public API, or emits a
//! compile error spanning the part of the input that is wrong.

use proc_macro::TokenStream;
use proc_macro2::TokenStream as TokenStream2;
use quote::{ToTokens, quote};
use syn::parse::{Parse, ParseStream, Parser};
use syn::punctuated::Punctuated;
use syn::{Block, Expr, Ident, ItemFn, Stmt, Token, parse_macro_input};

mod select;

/// Waits on several channel operations and runs the arm of the one that completes (Go's
/// `select`, with crossbeam-channel's syntax).
///
/// Arms:
/// - `recv(receiver) -> result => body`: `result` is `Result<T, RecvError>` (an error once the
///   channel is empty and every sender is gone);
/// - `send(sender, value) -> result => body`: `result` is `Result<(), SendError<T>>` (the error
///   hands `value` back once every receiver is gone); `value` is evaluated even if another arm
///   wins, and dropped then;
/// - `default => body`: runs at once if no operation is ready;
/// - `default(timeout) => body`: runs if no operation completes within `timeout`.
///
/// When several operations are ready, one is chosen uniformly at random. Without a `default`
/// arm, the select parks the goroutine (or blocks the thread) once, on all the operations. For
/// a timeout in the middle of other arms, receive from `gort::time::after(duration)`.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use gort::select;
///
/// let (tx, rx) = gort::chan::bounded::<i32>(1);
/// let (done_tx, done_rx) = gort::chan::bounded::<()>(0);
/// tx.send(5).unwrap();
/// let got = select! {
///     recv(rx) -> value => value.unwrap(),
///     recv(done_rx) -> _ => 0,
///     recv(gort::time::after(Duration::from_secs(5))) -> _ => -1,
/// };
/// assert_eq!(got, 5);
///
/// let sent = select! {
///     send(tx, 6) -> result => result.is_ok(),
///     default => false,
/// };
/// assert!(sent);
/// # drop(done_tx);
/// ```
///
/// A malformed arm is a compile error spanning that arm: an unknown operation,
///
/// ```compile_fail
/// let (_tx, rx) = gort::chan::unbounded::<i32>();
/// gort::select! {
///     receive(rx) -> value => value.unwrap(), // error: expected `recv`, `send` or `default`
/// };
/// ```
///
/// a missing binding,
///
/// ```compile_fail
/// let (_tx, rx) = gort::chan::unbounded::<i32>();
/// gort::select! {
///     recv(rx) => 0, // error: expected `-> pattern` after `recv(..)`
/// };
/// ```
///
/// or the wrong arguments:
///
/// ```compile_fail
/// let (tx, _rx) = gort::chan::unbounded::<i32>();
/// gort::select! {
///     send(tx) -> sent => sent.is_ok(), // error: expected `send(sender, value) -> pattern => body`
/// };
/// ```
#[proc_macro]
pub fn select(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as select::SelectInput);
    select::expand(input).into()
}

/// Spawns a goroutine and returns its `JoinHandle` (panics, like `gort::spawn`, if no goroutine
/// can be created).
///
/// `go!(closure)` spawns a closure (or any callable path); `go! { statements }` spawns the
/// statements as a `move` closure whose value is the last expression.
///
/// # Examples
///
/// ```
/// use gort::go;
///
/// let name = String::from("gopher");
/// let greeting = go! {
///     let greeting = format!("hello, {name}");
///     greeting.len()
/// };
/// let doubled = go!(|| 21 * 2);
/// assert_eq!((greeting.join().unwrap(), doubled.join().unwrap()), (13, 42));
/// ```
#[proc_macro]
pub fn go(input: TokenStream) -> TokenStream {
    let input = TokenStream2::from(input);
    if let Ok(expr) = syn::parse2::<Expr>(input.clone())
        && matches!(expr, Expr::Closure(_) | Expr::Path(_))
    {
        return quote!(::gort::spawn(#expr)).into();
    }
    match Block::parse_within.parse2(input) {
        Ok(statements) => spawn_statements(&statements).into(),
        Err(err) => err.to_compile_error().into(),
    }
}

fn spawn_statements(statements: &[Stmt]) -> TokenStream2 {
    quote!(::gort::spawn(move || { #(#statements)* }))
}

/// One `key = value` option of `spawn!`.
struct SpawnOption {
    key: Ident,
    value: Expr,
}

/// `spawn!`'s input: options, then the closure.
struct SpawnInput {
    options: Vec<SpawnOption>,
    closure: Expr,
}

impl Parse for SpawnInput {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let mut options = Vec::new();
        while input.peek(Ident) && input.peek2(Token![=]) && !input.peek2(Token![==]) {
            let key: Ident = input.parse()?;
            input.parse::<Token![=]>()?;
            let value: Expr = input.parse()?;
            if key != "name" && key != "stack_size" {
                return Err(syn::Error::new(
                    key.span(),
                    format!(
                        "unknown option `{key}`: spawn! takes `name = …` and `stack_size = …`, then the closure"
                    ),
                ));
            }
            options.push(SpawnOption { key, value });
            input.parse::<Token![,]>()?;
        }
        if input.is_empty() {
            return Err(input.error("spawn! needs a closure to run after its options"));
        }
        let closure: Expr = input.parse()?;
        if !input.is_empty() {
            input.parse::<Token![,]>()?;
        }
        if !input.is_empty() {
            return Err(input.error("unexpected tokens after the closure"));
        }
        Ok(SpawnInput { options, closure })
    }
}

/// Spawns a goroutine configured like `gort::Builder` and returns
/// `io::Result<JoinHandle<T>>`: `spawn!(name = "…", stack_size = N, closure)`. Both options are
/// optional; an unknown option is a compile error that points at it.
///
/// # Examples
///
/// ```
/// let handle = gort::spawn!(name = "worker", stack_size = 64 * 1024, || {
///     gort::current().unwrap().name().map(str::to_owned)
/// })?;
/// assert_eq!(handle.join().unwrap().as_deref(), Some("worker"));
/// # Ok::<(), std::io::Error>(())
/// ```
///
/// ```compile_fail
/// let handle = gort::spawn!(colour = "blue", || ());
/// ```
#[proc_macro]
pub fn spawn(input: TokenStream) -> TokenStream {
    let SpawnInput { options, closure } = parse_macro_input!(input as SpawnInput);
    let calls = options
        .iter()
        .map(|SpawnOption { key, value }| quote!(.#key(#value)));
    quote!(::gort::Builder::new() #(#calls)* .spawn(#closure)).into()
}

/// Runtime settings given to `#[gort::main(…)]` or `#[gort::test(…)]`.
fn runtime_settings(args: TokenStream2) -> syn::Result<TokenStream2> {
    let options = Punctuated::<syn::MetaNameValue, Token![,]>::parse_terminated.parse2(args)?;
    if options.is_empty() {
        return Ok(TokenStream2::new());
    }
    let mut calls = Vec::new();
    for option in options {
        let key = option
            .path
            .get_ident()
            .filter(|key| *key == "procs" || *key == "stack_size" || *key == "migration")
            .ok_or_else(|| {
                syn::Error::new_spanned(
                    &option.path,
                    "unknown runtime option: use `procs = …`, `stack_size = …` or `migration = …`",
                )
            })?;
        let value = option.value;
        calls.push(quote!(.#key(#value)));
    }
    Ok(quote! {
        ::gort::Runtime::builder() #(#calls)* .start().unwrap_or_else(|err| panic!("{err}"));
    })
}

/// Wraps a function body so that it runs as the main goroutine (through `gort::run`).
fn run_as_main_goroutine(args: TokenStream, item: TokenStream, test: bool) -> TokenStream {
    let settings = match runtime_settings(args.into()) {
        Ok(settings) => settings,
        Err(err) => return err.to_compile_error().into(),
    };
    let function = parse_macro_input!(item as ItemFn);
    if let Some(asyncness) = &function.sig.asyncness {
        return syn::Error::new_spanned(asyncness, "gort runs blocking code: remove `async`")
            .to_compile_error()
            .into();
    }
    if !function.sig.inputs.is_empty() {
        return syn::Error::new_spanned(
            &function.sig.inputs,
            "this function cannot take arguments",
        )
        .to_compile_error()
        .into();
    }
    let ItemFn {
        attrs,
        vis,
        sig,
        block,
    } = function;
    let test_attr = if test {
        quote!(#[::core::prelude::v1::test])
    } else {
        TokenStream2::new()
    };
    let body = block.into_token_stream();
    quote! {
        #test_attr
        #(#attrs)*
        #vis #sig {
            #settings
            ::gort::run(move || #body)
        }
    }
    .into()
}

/// Runs `main` as the main goroutine of a gort program, optionally configuring the runtime
/// first: `#[gort::main(procs = 4, stack_size = 1 << 20, migration = false)]`.
///
/// # Examples
///
/// ```
/// #[gort::main]
/// fn main() {
///     let answer = gort::spawn(|| 42).join().unwrap();
///     assert_eq!(answer, 42);
/// }
/// # main();
/// ```
#[proc_macro_attribute]
pub fn main(args: TokenStream, item: TokenStream) -> TokenStream {
    run_as_main_goroutine(args, item, false)
}

/// Runs a test as the main goroutine: `#[gort::test]` replaces `#[test]`, and takes the same
/// runtime options as [`macro@main`].
///
/// # Examples
///
/// ```
/// #[gort::test]
/// fn goroutines_add_up() {
///     let sum: u32 = (1..=3).map(|i| gort::spawn(move || i)).map(|h| h.join().unwrap()).sum();
///     assert_eq!(sum, 6);
/// }
/// ```
#[proc_macro_attribute]
pub fn test(args: TokenStream, item: TokenStream) -> TokenStream {
    run_as_main_goroutine(args, item, true)
}
