"""backline.analyzers.net"""
