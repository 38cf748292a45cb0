# Multi-stage build on Debian 12: the builder compiles with Debian's packages only; the
# runtime image carries the binary, its shared libraries and CA certificates, and runs as an
# unprivileged user.
FROM debian:12 AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      g++ cmake make libboost1.81-dev nlohmann-json3-dev libssl-dev prometheus-cpp-dev \
      libyaml-cpp-dev libre2-dev pkg-config \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY CMakeLists.txt ./
COPY server server
COPY adapters adapters
COPY third_party third_party
# The built-in rules are compiled in from the shipped rules file.
COPY manifests/base/gpu-rules.yaml manifests/base/gpu-rules.yaml
RUN cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DGMA_BUILD_TESTS=OFF \
 && cmake --build build --parallel "$(nproc)" \
 && strip build/gpu-metrics-adapter

FROM debian:12-slim
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libssl3 libprometheus-cpp-core1.0 libyaml-cpp0.7 libre2-9 ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/build/gpu-metrics-adapter /usr/local/bin/gpu-metrics-adapter
USER 65532:65532
EXPOSE 6443
ENTRYPOINT ["/usr/local/bin/gpu-metrics-adapter"]
