# Silhouette GPU image: CUDA toolkit and cuDNN for the kernels and full-precision layers, JDK 25 and
# Maven for the build, the CLI as entrypoint.
#   docker build -t silhouette .
#   docker run --gpus all silhouette run            (the main job)
#   docker run --gpus all silhouette inspect --model resnet50
FROM nvidia/cuda:13.0.1-cudnn-devel-ubuntu24.04

ARG JDK_URL=https://api.adoptium.net/v3/binary/latest/25/ga/linux/x64/jdk/hotspot/normal/eclipse
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates curl maven unzip \
    && rm -rf /var/lib/apt/lists/* \
    && mkdir -p /opt/jdk && curl -fsSL "$JDK_URL" | tar -xz -C /opt/jdk --strip-components=1
ENV JAVA_HOME=/opt/jdk PATH=/opt/jdk/bin:/usr/local/cuda/bin:$PATH

WORKDIR /opt/silhouette
COPY pom.xml ./
RUN mvn -B -q dependency:go-offline
COPY . .
RUN bash native-build/image-build.sh

ENTRYPOINT ["/opt/silhouette/bin/silhouette"]
CMD ["run"]
