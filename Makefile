# tinysplit firmware build from a checkout: `make BOARD=mps2_an386 MODEL_DIR=out/digits`.
# The rules live in firmware/firmware.mk, which travels with the Python package; the host runs
# `make -C <source root> -f firmware/firmware.mk` in a checkout and an installed wheel alike.
include firmware/firmware.mk
