"""backline.analyzers.logs"""
