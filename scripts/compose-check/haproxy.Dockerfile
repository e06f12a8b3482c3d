# Stand-in for Docker Hub's haproxy:2.6-bookworm, built where no registry can be reached:
# Debian's HAProxy 2.6, run as the official image runs it (user haproxy, config at
# /usr/local/etc/haproxy/haproxy.cfg, master-worker in the foreground, SIGUSR1 to stop softly).
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends haproxy \
 && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /usr/local/etc/haproxy /var/lib/haproxy \
 && ln -s /usr/sbin/haproxy /usr/local/sbin/haproxy
STOPSIGNAL SIGUSR1
USER haproxy
WORKDIR /var/lib/haproxy
EXPOSE 5000
CMD ["haproxy", "-W", "-db", "-f", "/usr/local/etc/haproxy/haproxy.cfg"]
