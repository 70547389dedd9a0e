namespace Daemon.Handover;

/// <summary>Who gave this generation a listener it did not bind itself.</summary>
internal enum InheritedFrom
{
    /// <summary>The previous generation, on a zero-downtime <c>restart</c>: it is bound where it was.</summary>
    Predecessor,

    /// <summary>systemd, from a socket unit: the unit decides its address and owns its file.</summary>
    SocketUnit,

    /// <summary>systemd, from its fd store, where an earlier start of the same unit put it.</summary>
    FileDescriptorStore,
}
