//! `select!`: parsing its arms and expanding them into calls to `gort::chan`'s select engine.
//!
//! Invariant: every error spans the arm (or the part of it) that is wrong.

use proc_macro2::{Span, TokenStream as TokenStream2};
use quote::{format_ident, quote, quote_spanned};
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{Expr, Ident, Pat, Token, parenthesized};

/// Most arms the engine takes (`gort::chan::__private::MAX_ARMS`).
const MAX_ARMS: usize = 256;

enum Operation {
    Recv { channel: Expr },
    Send { channel: Expr, value: Expr },
}

struct OperationArm {
    operation: Operation,
    pattern: Pat,
    body: Expr,
    span: Span,
}

struct DefaultArm {
    timeout: Option<Expr>,
    body: Expr,
}

pub(crate) struct SelectInput {
    arms: Vec<OperationArm>,
    default: Option<DefaultArm>,
}

impl Parse for SelectInput {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let mut arms = Vec::new();
        let mut default: Option<DefaultArm> = None;
        while !input.is_empty() {
            let keyword: Ident = input.parse()?;
            let content;
            let args_present = input.peek(syn::token::Paren);
            let args: Punctuated<Expr, Token![,]> = if args_present {
                parenthesized!(content in input);
                content.parse_terminated(Expr::parse, Token![,])?
            } else {
                Punctuated::new()
            };
            let arm_span = keyword.span();
            match keyword.to_string().as_str() {
                "recv" | "send" => {
                    let wanted = if keyword == "recv" { 1 } else { 2 };
                    if !args_present || args.len() != wanted {
                        let shape = if wanted == 1 {
                            "recv(receiver)"
                        } else {
                            "send(sender, value)"
                        };
                        return Err(syn::Error::new(
                            if args_present { args.span() } else { arm_span },
                            format!("expected `{shape} -> pattern => body`"),
                        ));
                    }
                    if !input.peek(Token![->]) {
                        return Err(syn::Error::new(
                            input.span(),
                            format!("expected `-> pattern` after `{keyword}(..)`"),
                        ));
                    }
                    input.parse::<Token![->]>()?;
                    let pattern = Pat::parse_single(input)?;
                    input.parse::<Token![=>]>()?;
                    let body = parse_body(input)?;
                    let mut args = args.into_iter();
                    let channel = args.next().expect("counted");
                    let operation = match args.next() {
                        None => Operation::Recv { channel },
                        Some(value) => Operation::Send { channel, value },
                    };
                    arms.push(OperationArm {
                        operation,
                        pattern,
                        body,
                        span: arm_span,
                    });
                }
                "default" => {
                    if default.is_some() {
                        return Err(syn::Error::new(
                            arm_span,
                            "a select has at most one `default` arm",
                        ));
                    }
                    if args.len() > 1 {
                        return Err(syn::Error::new(
                            args.span(),
                            "expected `default => body` or `default(timeout) => body`",
                        ));
                    }
                    if input.peek(Token![->]) {
                        return Err(syn::Error::new(
                            input.span(),
                            "a `default` arm binds nothing: expected `=>`",
                        ));
                    }
                    input.parse::<Token![=>]>()?;
                    let body = parse_body(input)?;
                    default = Some(DefaultArm {
                        timeout: args.into_iter().next(),
                        body,
                    });
                }
                _ => {
                    return Err(syn::Error::new(
                        arm_span,
                        format!("expected `recv`, `send` or `default`, found `{keyword}`"),
                    ));
                }
            }
        }
        if arms.len() > MAX_ARMS {
            return Err(syn::Error::new(
                arms[MAX_ARMS].span,
                format!("a select takes at most {MAX_ARMS} operation arms"),
            ));
        }
        Ok(SelectInput { arms, default })
    }
}

/// An arm's body, and the comma after it (which a block body may omit).
fn parse_body(input: ParseStream) -> syn::Result<Expr> {
    let body: Expr = input.parse()?;
    let is_block = matches!(body, Expr::Block(_));
    if input.peek(Token![,]) {
        input.parse::<Token![,]>()?;
    } else if !input.is_empty() && !is_block {
        return Err(syn::Error::new(
            input.span(),
            "expected `,` after this arm's body",
        ));
    }
    Ok(body)
}

pub(crate) fn expand(input: SelectInput) -> TokenStream2 {
    let private = quote!(::gort::chan::__private);
    let site = Span::mixed_site();
    let mut setup = Vec::new();
    let mut arm_refs = Vec::new();
    let mut branches = Vec::new();
    for (index, arm) in input.arms.iter().enumerate() {
        let channel = format_ident!("channel{}", index, span = site);
        let state = format_ident!("arm{}", index, span = site);
        match &arm.operation {
            Operation::Recv { channel: expr } => setup.push(quote_spanned! {arm.span=>
                let #channel = &(#expr);
                let mut #state = #private::RecvArm::new(#private::AsReceiver::as_receiver(#channel));
            }),
            Operation::Send {
                channel: expr,
                value,
            } => setup.push(quote_spanned! {arm.span=>
                let #channel = &(#expr);
                let mut #state = #private::SendArm::new(#private::AsSender::as_sender(#channel), #value);
            }),
        }
        arm_refs.push(quote!(#state.as_arm()));
        let (pattern, body) = (&arm.pattern, &arm.body);
        branches.push(quote! {
            ::core::option::Option::Some(#index) => {
                let #pattern = #state.into_result();
                #body
            }
        });
    }
    let (wait, fallback) = match &input.default {
        None => (
            quote!(#private::Wait::Block),
            quote!(_ => ::core::unreachable!("a blocking select completes an arm")),
        ),
        Some(DefaultArm {
            timeout: None,
            body,
        }) => (quote!(#private::Wait::Never), quote!(_ => { #body })),
        Some(DefaultArm {
            timeout: Some(timeout),
            body,
        }) => (quote!(#private::deadline(#timeout)), quote!(_ => { #body })),
    };
    let selected = format_ident!("selected", span = site);
    quote! {{
        #(#setup)*
        let #selected = #private::select(&mut [#(#arm_refs),*], #wait);
        match #selected {
            #(#branches)*
            #fallback
        }
    }}
}
