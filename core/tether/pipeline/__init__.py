"""The five stages of a pass: pull -> map -> assess -> plan -> apply, one module each."""
