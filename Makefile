# The two commands of the README's quick start, and a few helpers.
.PHONY: demo test lint services-up services-down services-status

demo:            ## run the demo pipeline end to end on real services
	scripts/demo

test:            ## bring the services up and run the whole test suite
	scripts/test

lint:            ## formatting and clippy, warnings are errors
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings

services-up:
	scripts/services up
services-down:
	scripts/services down
services-status:
	scripts/services status
