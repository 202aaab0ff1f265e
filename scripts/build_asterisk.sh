#!/bin/bash
# Build Asterisk 23 (with its bundled pjproject) OUTSIDE the repository, for the optional interop tests
# (tests/telephony/peers/test_asterisk_real.py run when VOXLINE_ASTERISK_PREFIX names the prefix).
#
#   scripts/build_asterisk.sh ASTERISK_GIT_DIR PJPROJECT_GIT_DIR [WORK_DIR]
#
# ASTERISK_GIT_DIR: a clone of https://github.com/asterisk/asterisk (tag 23.4.1 is used);
# PJPROJECT_GIT_DIR: a clone of https://github.com/pjsip/pjproject (tag 2.17, what 23.4.1 bundles).
# No network is needed: pjproject's tarball is made from the clone and put in the externals cache,
# with its own checksum (GitHub's release tarball is not byte-identical to a git archive), and the
# install is `make bininstall` (`make install` would download sounds; the tests use Debian's
# asterisk-core-sounds-en-wav). About 15 minutes on 2 cores, niced. Needs: build-essential,
# libjansson-dev, libedit-dev, libxml2-dev, libsqlite3-dev, uuid-dev, libssl-dev.
set -euo pipefail
AST_GIT=${1:?asterisk git dir}
PJ_GIT=${2:?pjproject git dir}
WORK=${3:-/opt/asterisk23}
AST_TAG=23.4.1
PJ_TAG=2.17
mkdir -p "$WORK/cache"
(cd "$PJ_GIT" && git archive --format=tar --prefix=pjproject-$PJ_TAG/ $PJ_TAG) | bzip2 > "$WORK/cache/pjproject-$PJ_TAG.tar.bz2"
rm -rf "$WORK/src" && mkdir -p "$WORK/src"
(cd "$AST_GIT" && git archive $AST_TAG) | tar -x -C "$WORK/src"
cd "$WORK/src"
echo $AST_TAG > .version
echo "$(md5sum "$WORK/cache/pjproject-$PJ_TAG.tar.bz2" | cut -d' ' -f1)  pjproject-$PJ_TAG.tar.bz2" \
  > third-party/pjproject/pjproject-$PJ_TAG.tar.bz2.md5
nice -n 19 ./configure --prefix="$WORK/prefix" --with-pjproject-bundled --with-externals-cache="$WORK/cache"
nice -n 19 make menuselect.makeopts
# app_audiosocket and chan_audiosocket are off by default
menuselect/menuselect --enable app_audiosocket --enable chan_audiosocket --enable res_audiosocket \
  --enable codec_g722 menuselect.makeopts
nice -n 19 make -j2
nice -n 19 make bininstall
echo "built: export VOXLINE_ASTERISK_PREFIX=$WORK/prefix"
