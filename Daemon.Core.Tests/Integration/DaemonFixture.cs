namespace Daemon.Core.Tests.Integration;

/// <summary>
/// A fixture whose every test gets a real daemon in a temp folder of its own: made before the test,
/// disposed after the fixture's own teardown (its helpers ended, what it started killed by pid, its
/// folder removed). By default the example echo daemon in a folder labelled <see cref="FolderLabel"/>;
/// override <see cref="CreateDaemon"/> for another. A derived fixture keeps its own <c>[Category]</c>
/// and parallelism attributes.
/// </summary>
public abstract class DaemonFixture
{
    /// <summary>This test's daemon (protected and named like a field so fixtures read as before).</summary>
    protected ExampleDaemon _daemon = null!;

    /// <summary>The label of the test's temp folder (under <see cref="TestEnvironment.TestsFolder"/>).</summary>
    protected virtual string FolderLabel => "d";

    [SetUp]
    public void CreateTheDaemon() => _daemon = CreateDaemon();

    [TearDown]
    public void DisposeTheDaemon() => _daemon?.Dispose();

    /// <summary>Makes this test's daemon; by default the example echo daemon on a free port.</summary>
    protected virtual ExampleDaemon CreateDaemon() => new(FolderLabel);

    /// <summary>
    /// A test where a second local user (<c>nobody</c>, through runuser) attacks: needs root, runuser,
    /// and a test folder that nobody can reach (it runs shell commands and python3 on files there).
    /// </summary>
    protected static ExampleDaemon CreateDaemonNobodyCanReach(string label)
    {
        TestEnvironment.RequireRoot();
        TestEnvironment.RequireTool(Nobody.RunUser);
        var daemon = new ExampleDaemon(label);
        TestEnvironment.RequireReachableByOthers(daemon.Folder);
        return daemon;
    }
}
