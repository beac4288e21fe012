"""PlatformIO extra script (pre:) for every env in platformio.ini: what the Makefile does that
PlatformIO's options cannot say.

- Names the image tinysplit.elf (with tinysplit.map), as the Makefile does.
- Links with the env's custom_link_flags (cortex_m.mk's LINKFLAGS plus custom_arch): the
  platforms pass only -mcpu to the linker, and without the float ABI gcc would pick the wrong
  newlib/libgcc multilib. Writes a linker map next to the ELF, as the Makefile does.
- Compiles the model: model_data.c (and pairing_key.c) from the export in $TINYSPLIT_MODEL_DIR,
  else the env's custom_model_dir (relative to the project), with that folder on the include
  path.
- Runs custom_post_link (a Python script, e.g. boards/pico/boot2_crc.py) on the ELF as part of
  the link, before the platform turns it into .bin/.hex/.uf2.
"""

import os
import sys

Import("env")  # noqa: F821 - SCons injects Import and env into extra scripts

project_dir = env.subst("$PROJECT_DIR")  # noqa: F821


def option(name, default=""):
    return env.GetProjectOption(name, default)  # noqa: F821


env.Replace(PROGNAME="tinysplit")  # noqa: F821 - before the platform names it "firmware"
env.Append(  # noqa: F821
    LINKFLAGS=option("custom_link_flags").split()
    + ["-Wl,-Map=" + os.path.join(env.subst("$BUILD_DIR"), "tinysplit.map")]  # noqa: F821
)

model_dir = os.environ.get("TINYSPLIT_MODEL_DIR") or option("custom_model_dir")
model_dir = os.path.abspath(os.path.join(project_dir, model_dir))
if not os.path.isfile(os.path.join(model_dir, "model_data.c")):
    sys.stderr.write(
        "Error: no model_data.c in %s: export a model first (`tinysplit export MODEL --out DIR`),"
        " then set TINYSPLIT_MODEL_DIR=DIR or custom_model_dir in platformio.ini\n" % model_dir
    )
    env.Exit(1)  # noqa: F821
env.Append(CPPPATH=[model_dir])  # noqa: F821
env.BuildSources(os.path.join("$BUILD_DIR", "model"), model_dir, "-<*> +<*.c>")  # noqa: F821

post_link = option("custom_post_link")
if post_link:
    # Part of the link command itself, so it runs whenever the ELF is (re)linked and SCons
    # records the sealed file (a post-action on the node is skipped on some relinks).
    env.Replace(  # noqa: F821
        LINKCOM=env["LINKCOM"]  # noqa: F821
        + ' && "$PYTHONEXE" "%s" "$TARGET"' % os.path.join(project_dir, post_link)
    )
