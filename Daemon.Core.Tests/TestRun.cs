namespace Daemon.Core.Tests;

/// <summary>Around the whole run: the tests' root temp folder goes once the last fixture has ended.</summary>
[SetUpFixture]
public sealed class TestRun
{
    [OneTimeTearDown]
    public void RemoveTheTestsFolder()
    {
        string root = TestEnvironment.TestsFolder;
        if (!Directory.Exists(root))
        {
            return;
        }

        // Every test removes its own folder; what is left is named, never deleted blindly (another
        // run on this machine may be using the root folder at the same time).
        string[] left = Directory.GetFileSystemEntries(root);
        if (left.Length > 0)
        {
            TestContext.Progress.WriteLine($"left in {root}: {string.Join(", ", Array.ConvertAll(left, Path.GetFileName))}");
            return;
        }

        try
        {
            Directory.Delete(root);
        }
        catch (IOException)
        {
            // Another run created something in it meanwhile: it is theirs to remove.
        }
    }
}
