# The QEMU TCG plugins of scripts/qemu_plugins (host gcc; no QEMU headers or glib needed):
#   make -f scripts/qemu_plugins/plugin.mk [PLUGIN_BUILD_DIR=build/qemu_plugins]
#     -> $(PLUGIN_BUILD_DIR)/insn_count.so
PLUGIN_BUILD_DIR ?= build/qemu_plugins
PLUGIN_CC        ?= gcc
PLUGIN_CFLAGS    := -std=c11 -O2 -shared -fPIC -fvisibility=hidden -Wall -Wextra -Werror

.PHONY: plugins
plugins: $(PLUGIN_BUILD_DIR)/insn_count.so

$(PLUGIN_BUILD_DIR)/%.so: scripts/qemu_plugins/%.c scripts/qemu_plugins/plugin.mk
	@mkdir -p $(dir $@)
	$(PLUGIN_CC) $(PLUGIN_CFLAGS) $< -o $@
