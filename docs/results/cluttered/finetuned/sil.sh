#!/usr/bin/env bash
# Runs the snapshot of the jar taken for the cluttered fine-tuning study (rebuilding the repository does not disturb it).
here=$(cd "$(dirname "$0")" && pwd)
exec /usr/lib/jvm/temurin-25-jdk-amd64/bin/java --add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED --sun-misc-unsafe-memory-access=allow -XX:+UseParallelGC \
  -cp "$here/rt/silhouette.jar:$here/rt/lib/*" dev.silhouette.cli.Main "$@"
