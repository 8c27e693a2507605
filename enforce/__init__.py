"""tinyjail.enforce: apply an OCI seccomp policy to a command (libseccomp, Landlock, user notification)."""
