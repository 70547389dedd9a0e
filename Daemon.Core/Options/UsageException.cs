using System;

namespace Daemon.Options;

/// <summary>A command line that cannot be understood: usage error, exit 2.</summary>
internal sealed class UsageException(string message) : Exception(message);
