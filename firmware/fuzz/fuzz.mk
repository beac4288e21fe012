# libFuzzer harnesses (clang, built for this host): the frame decoder and the client's message
# handlers. Self-contained, so it works included from the top Makefile or on its own:
#
#   make -f firmware/fuzz/fuzz.mk fuzz MODEL_DIR=<export dir>   -> build/fuzz/fuzz_frame, fuzz_client
#   scripts/fuzz.sh [SECONDS]                                    -> builds, runs both, reports
#
# fuzz_client links the firmware's client with an export's C files (MODEL_DIR: model_data.c,
# pairing_key.c) and a board stub (fuzz_board.c). Sanitizers: ASan + UBSan, every report fatal.
FUZZ_CC    ?= clang
FUZZ_DIR   ?= build/fuzz
FUZZ_FLAGS := -std=c11 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
              -fno-omit-frame-pointer -ffp-contract=off -fno-fast-math \
              -Wall -Wextra -Werror -Wshadow
FUZZ_PROTO_SRCS  := $(wildcard firmware/protocol/*.c)
FUZZ_CLIENT_SRCS := $(filter-out firmware/client/main.c,$(wildcard firmware/client/*.c)) \
                    $(wildcard firmware/kernels/*.c) firmware/fuzz/fuzz_board.c
FUZZ_HEADERS     := $(wildcard firmware/include/*.h firmware/protocol/*.h firmware/client/*.h)
FUZZ_INCLUDES    := -Ifirmware/include -Ifirmware/protocol -Ifirmware/client

.PHONY: fuzz fuzz-frame fuzz-client
fuzz: fuzz-frame fuzz-client
fuzz-frame: $(FUZZ_DIR)/fuzz_frame
fuzz-client: $(FUZZ_DIR)/fuzz_client

$(FUZZ_DIR)/fuzz_frame: firmware/fuzz/fuzz_frame.c $(FUZZ_PROTO_SRCS) $(FUZZ_HEADERS)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_FLAGS) $(FUZZ_INCLUDES) firmware/fuzz/fuzz_frame.c $(FUZZ_PROTO_SRCS) -o $@

$(FUZZ_DIR)/fuzz_client: firmware/fuzz/fuzz_client.c $(FUZZ_CLIENT_SRCS) $(FUZZ_PROTO_SRCS) \
                         $(FUZZ_HEADERS) $(if $(MODEL_DIR),$(wildcard $(MODEL_DIR)/*.c))
	@test -n "$(MODEL_DIR)" || { echo "fuzz_client needs MODEL_DIR=<export dir>" >&2; exit 1; }
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_FLAGS) $(FUZZ_INCLUDES) -I$(MODEL_DIR) firmware/fuzz/fuzz_client.c \
		$(FUZZ_CLIENT_SRCS) $(FUZZ_PROTO_SRCS) $(wildcard $(MODEL_DIR)/*.c) -lm -o $@
