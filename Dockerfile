# Silhouette's GPU image, in two stages:
#   build:   CUDA devel + cuDNN, JDK 25 and Maven; native-build/image-build.sh builds the kernels, the jar and a
#            jlinked Java runtime, and checks them (CI runs the same script, as no Docker engine runs there).
#   runtime: CUDA runtime + cuDNN, that Java runtime, the jar; a non-root user; `serve` by default.
#
#   docker build -t silhouette .
#   docker run --gpus all -p 8000:8000 -p 8001:8001 -p 8002:8002 silhouette
#   docker run --gpus all -u "$(id -u):$(id -g)" -v "$PWD/out:/out" silhouette bench --model resnet18 --batch 8 --out /out/bench.json
#   docker run --gpus all -u "$(id -u):$(id -g)" -v "$PWD/out:/out" silhouette run --out /out/run
# DeployTest checks the ports, health path, user, entrypoint and command here against the server and the manifests.
ARG CUDA_VERSION=13.0.1

# JDK 25 and Maven come from their official images (nothing is downloaded by hand).
FROM maven:3.9-eclipse-temurin-25 AS maven

FROM nvidia/cuda:${CUDA_VERSION}-cudnn-devel-ubuntu24.04 AS build
RUN apt-get update && apt-get install -y --no-install-recommends gcc unzip curl \
    && rm -rf /var/lib/apt/lists/*
COPY --from=maven /opt/java/openjdk /opt/jdk
COPY --from=maven /usr/share/maven /opt/maven
ENV JAVA_HOME=/opt/jdk PATH=/opt/jdk/bin:/opt/maven/bin:/usr/local/cuda/bin:$PATH
WORKDIR /src
COPY pom.xml ./
RUN mvn -B -q dependency:go-offline
COPY . .
RUN bash native-build/image-build.sh

FROM nvidia/cuda:${CUDA_VERSION}-cudnn-runtime-ubuntu24.04 AS runtime
# curl for the HEALTHCHECK; uid 10001 so that Kubernetes' runAsNonRoot can check it by number.
RUN apt-get update && apt-get install -y --no-install-recommends curl \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --gid 10001 silhouette \
    && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /tmp --shell /usr/sbin/nologin silhouette \
    && mkdir /out && chown 10001:10001 /out
COPY --from=build /src/target/jre /opt/java
COPY --from=build /src/target/silhouette.jar /opt/silhouette/target/silhouette.jar
COPY --from=build /src/target/lib /opt/silhouette/target/lib
COPY --from=build /src/bin/silhouette /opt/silhouette/bin/silhouette
ENV JAVA_HOME=/opt/java
USER 10001:10001
WORKDIR /out
VOLUME /out
EXPOSE 8000 8001 8002
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s --retries=3 CMD ["curl", "-fsS", "-o", "/dev/null", "http://127.0.0.1:8000/v2/health/ready"]
ENTRYPOINT ["/opt/silhouette/bin/silhouette"]
CMD ["serve"]
